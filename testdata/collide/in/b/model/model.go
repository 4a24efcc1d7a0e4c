package model

type Item struct{ B string }
