// Package users has a struct with unsupported fields used by several
// methods: each bad field is reported once, at the field, with the path
// from the first method that reaches it; the standard library's internals
// (sync.Mutex, bytes.Buffer) are never descended into.
package users

import (
	"bytes"
	"context"
	"sync"
)

// User is a user.
type User struct {
	Name   string
	Lock   sync.Mutex
	ch     chan int
	F      func()
	C      chan string
	I      any
	X      complex64
	secret string
	Home   Address
}

// Address is reached through User.Home.
type Address struct {
	Street string
	Notes  bytes.Buffer
	Guards [2]sync.RWMutex
	Wait   *sync.WaitGroup
}

// Users keeps users.
//
//molgen:service
type Users interface {
	Get(ctx context.Context, id string) (User, error)
	Put(ctx context.Context, u User) error
	List(ctx context.Context) ([]User, error)
	Find(ctx context.Context, byName map[string]*User) error
	Where(ctx context.Context, id string) (Address, error)
}
