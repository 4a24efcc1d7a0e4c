package model

type Item struct{ A int }
