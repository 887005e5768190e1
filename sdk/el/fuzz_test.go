package el

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCompile checks that no template, however malformed, makes Compile or
// evaluation panic: templates come from operator configuration and, through
// attributes, from requests.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", "plain", "{#", "{#}", "{#request.id}", "a{#request.headers['X'][0]}b",
		"{#request.headers['Missing'][0]}", "{#jsonPath(#request.content,'$.a')}",
		"{#message.metadata.key}", "{#{'a':{1,2}}['a'][1]}", "{#'}'}", `{#"{"}`,
		"{#1 eq 1 ? null : 'x' ?: 'y'}", "{#request.id matches '('}", "{#$env}",
		"{#filter(request.headers['x-key'], # matches 'k.')}", "{#1e999}", "{#0x}",
		"{#let r = request; r?.headers}", "{#context.attributes['tok'] + 1}",
		"x required access_token=\"{#context.attributes['tok']}\";",
		"{#message.content.startsWith('vip:')}", "{#message.content?.substring(1, 2)}",
		"{#request.path.split('/')[1].toUpperCase()}", "{#'a' + 1 + null}",
		"{#let m = message; m}", "{#message.metadata.get('k').trim()}",
	} {
		f.Add(s)
	}
	env := fixture()
	f.Fuzz(func(t *testing.T, src string) {
		// A recovered panic surfaces as an "internal error"; fail on it too,
		// since the recover is a safety net, not the design.
		check := func(err error) {
			if err == nil {
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: error %T is not *Error: %v", src, err, err)
			}
			if strings.HasPrefix(e.Msg, "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
		}
		tpl, err := Compile(src)
		check(err)
		if err != nil {
			return
		}
		_, err = tpl.Eval(env)
		check(err)
		_, err = tpl.EvalString(env)
		check(err)
		_, err = tpl.Eval(Env{})
		check(err)
	})
}
