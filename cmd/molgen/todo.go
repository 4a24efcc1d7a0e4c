package main

import (
	"errors"
	"io"
)

func runCheck(args []string, stdout, stderr io.Writer) error  { return errors.New("todo") }
func runGraph(args []string, stdout, stderr io.Writer) error  { return errors.New("todo") }
func runInit(args []string, stdout, stderr io.Writer) error   { return errors.New("todo") }
