package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every command answers --help (and -h) with its own usage on stdout and
// exit 0, instead of taking the flag for a file name.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for cmd, want := range map[string]string{
		"run":      "usage: sluice run FILE",
		"validate": "usage: sluice validate FILE",
		"plugins":  "usage: sluice plugins [DIR...]",
		"plugin":   "usage: sluice plugin new KIND NAME [DIR]",
		"version":  "usage: sluice version",
		"help":     "usage: sluice <command>",
	} {
		for _, flag := range []string{"--help", "-h"} {
			t.Run(cmd+" "+flag, func(t *testing.T) {
				var out, errb bytes.Buffer
				if code := run([]string{cmd, flag}, &out, &errb); code != 0 {
					t.Fatalf("exit %d, stderr %q", code, errb.String())
				}
				if !strings.HasPrefix(out.String(), want) {
					t.Fatalf("stdout %q, want it to start with %q", out.String(), want)
				}
			})
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"help", "run"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: sluice run FILE") {
		t.Fatalf("help run: exit %d, stdout %q", code, out.String())
	}
}
