// Package demo is a scripted session against the blog, a //molgen:main that
// prints what it does and returns. Its output is the same under every
// placement: that is the point of molgen.
package demo

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/molgen/molgen/examples/blog/posts"
	"github.com/molgen/molgen/examples/blog/users"
)

// Demo runs the session and prints it to standard output.
//
//molgen:main
func Demo(ctx context.Context, p posts.Posts, u users.Users) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return Session(ctx, p, u, func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) })
}

// Session is the scripted session, printing with say.
func Session(ctx context.Context, p posts.Posts, u users.Users, say func(string, ...any)) error {
	ada, err := u.Create(ctx, "Ada Lovelace")
	if err != nil {
		return err
	}
	say("created user %s %q", ada.ID, ada.Name)
	alan, err := u.Create(ctx, "Alan Turing")
	if err != nil {
		return err
	}
	say("created user %s %q", alan.ID, alan.Name)

	_, err = u.Create(ctx, "   ")
	say("create user with a blank name: %v (errors.Is users.ErrInvalidName: %t)", err, errors.Is(err, users.ErrInvalidName))

	first, err := p.Publish(ctx, ada.ID, "Notes on the Analytical Engine", "It weaves algebraic patterns.", []string{"math", "engines"})
	if err != nil {
		return err
	}
	say("published post %d %q by %s at %s", first.ID, first.Title, first.Author, first.Published.Format(time.RFC3339))
	second, err := p.Publish(ctx, alan.ID, "On Computable Numbers", "", nil)
	if err != nil {
		return err
	}
	say("published post %d %q by %s, tags %v (nil: %t)", second.ID, second.Title, second.Author, second.Tags, second.Tags == nil)

	// The error comes from users, wrapped by posts, possibly two nodes away.
	_, err = p.Publish(ctx, "u404", "Ghost writing", "", nil)
	say("publish as unknown author: %v (errors.Is users.ErrNotFound: %t)", err, errors.Is(err, users.ErrNotFound))

	_, err = p.Get(ctx, 99)
	say("get post 99: %v (errors.Is posts.ErrNotFound: %t)", err, errors.Is(err, posts.ErrNotFound))

	for range 3 {
		if err := p.View(ctx, first.ID); err != nil {
			return err
		}
	}
	// View is oneway: wait until the three views are counted.
	var view posts.PostView
	for {
		view, err = p.Get(ctx, first.ID)
		if err != nil {
			return err
		}
		if view.Views >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	say("post %d has %d views, author %q, tags %s", view.ID, view.Views, view.AuthorName, strings.Join(view.Tags, ","))

	list, err := p.List(ctx)
	if err != nil {
		return err
	}
	for _, v := range list {
		say("list: post %d %q by %s", v.ID, v.Title, v.AuthorName)
	}
	many, err := u.GetMany(ctx, []users.UserID{ada.ID, "u404", alan.ID})
	if err != nil {
		return err
	}
	say("get many: %d found, %s and %s", len(many), many[ada.ID].Name, many[alan.ID].Name)
	return nil
}
