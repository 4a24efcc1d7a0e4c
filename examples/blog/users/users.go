// Package users is the blog's user directory.
package users

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// UserID identifies a user.
type UserID string

// User is a registered author.
type User struct {
	ID   UserID
	Name string
}

var (
	// ErrNotFound means no user has the ID asked for.
	ErrNotFound = errors.New("users: not found")
	// ErrInvalidName means a name is empty or too long.
	ErrInvalidName = errors.New("users: invalid name")
)

// Users keeps the blog's users.
//
//molgen:service
type Users interface {
	// Create registers a user.
	Create(ctx context.Context, name string) (User, error)

	// Get returns one user.
	//
	//molgen:timeout 2s
	Get(ctx context.Context, id UserID) (User, error)

	// GetMany returns the users with the given IDs that exist.
	//
	//molgen:retry 2
	GetMany(ctx context.Context, ids []UserID) (map[UserID]User, error)
}

// directory is an in-memory Users.
type directory struct {
	mu    sync.Mutex
	next  int
	users map[UserID]User
}

// New returns an empty in-memory user directory.
//
//molgen:constructor
func New() Users {
	return &directory{users: map[UserID]User{}}
}

func (d *directory) Create(ctx context.Context, name string) (User, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return User{}, fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	u := User{ID: UserID(fmt.Sprintf("u%d", d.next)), Name: name}
	d.users[u.ID] = u
	return u, nil
}

func (d *directory) Get(ctx context.Context, id UserID) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[id]
	if !ok {
		return User{}, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	return u, nil
}

func (d *directory) GetMany(ctx context.Context, ids []UserID) (map[UserID]User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[UserID]User, len(ids))
	for _, id := range ids {
		if u, ok := d.users[id]; ok {
			out[id] = u
		}
	}
	return out, nil
}
