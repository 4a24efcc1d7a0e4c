// Package posts is the blog's posts. It calls users for every post it
// shows, which makes the pair chatty: a good reason to place them together.
package posts

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/molgen/molgen/examples/blog/users"
)

// PostID identifies a post.
type PostID int64

// Post is an article.
type Post struct {
	ID        PostID
	Author    users.UserID
	Title     string
	Body      string
	Tags      []string
	Published time.Time
}

// PostView is a post as readers see it.
type PostView struct {
	Post
	AuthorName string
	Views      int
}

var (
	// ErrNotFound means no post has the ID asked for.
	ErrNotFound = errors.New("posts: not found")
	// ErrEmptyTitle means a post has no title.
	ErrEmptyTitle = errors.New("posts: empty title")
)

// Posts publishes and lists posts.
//
//molgen:service
type Posts interface {
	// Publish stores a post by an existing author.
	Publish(ctx context.Context, author users.UserID, title, body string, tags []string) (Post, error)

	// Get returns one post with its author's name.
	Get(ctx context.Context, id PostID) (PostView, error)

	// List returns every post, newest first, each with its author's name.
	List(ctx context.Context) ([]PostView, error)

	// View counts a read of a post; callers do not wait for it.
	//
	//molgen:oneway
	View(ctx context.Context, id PostID) error
}

// store is an in-memory Posts.
type store struct {
	users users.Users
	now   func() time.Time

	mu    sync.Mutex
	posts map[PostID]Post
	views map[PostID]int
}

// New returns an empty in-memory Posts that looks authors up in u.
//
//molgen:constructor
func New(ctx context.Context, u users.Users) (Posts, error) {
	return &store{
		users: u,
		now:   func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) },
		posts: map[PostID]Post{},
		views: map[PostID]int{},
	}, nil
}

func (s *store) Publish(ctx context.Context, author users.UserID, title, body string, tags []string) (Post, error) {
	if strings.TrimSpace(title) == "" {
		return Post{}, ErrEmptyTitle
	}
	if _, err := s.users.Get(ctx, author); err != nil {
		return Post{}, fmt.Errorf("posts: author %q: %w", author, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Post{
		ID:     PostID(len(s.posts) + 1),
		Author: author, Title: title, Body: body, Tags: tags,
		Published: s.now().Add(time.Duration(len(s.posts)) * time.Minute),
	}
	s.posts[p.ID] = p
	return p, nil
}

func (s *store) Get(ctx context.Context, id PostID) (PostView, error) {
	s.mu.Lock()
	p, ok := s.posts[id]
	views := s.views[id]
	s.mu.Unlock()
	if !ok {
		return PostView{}, fmt.Errorf("post %d: %w", id, ErrNotFound)
	}
	u, err := s.users.Get(ctx, p.Author)
	if err != nil {
		return PostView{}, fmt.Errorf("posts: author of post %d: %w", id, err)
	}
	return PostView{Post: p, AuthorName: u.Name, Views: views}, nil
}

func (s *store) List(ctx context.Context) ([]PostView, error) {
	s.mu.Lock()
	var out []PostView
	for _, p := range s.posts {
		out = append(out, PostView{Post: p, Views: s.views[p.ID]})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	// One call per post: chatty on purpose, like many real services.
	for i := range out {
		u, err := s.users.Get(ctx, out[i].Author)
		if err != nil {
			return nil, fmt.Errorf("posts: author of post %d: %w", out[i].ID, err)
		}
		out[i].AuthorName = u.Name
	}
	return out, nil
}

func (s *store) View(ctx context.Context, id PostID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.posts[id]; !ok {
		return fmt.Errorf("post %d: %w", id, ErrNotFound)
	}
	s.views[id]++
	return nil
}
