package inventory

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in      string
		want    string // "" checks only that the secrets are gone
		secrets []string
	}{
		{in: "", want: ""},
		{in: "postgres://metal@/metal?host=/run/postgresql", want: "postgres://metal@/metal?host=/run/postgresql"},
		{in: "postgres://u:hunter2@h/db", want: "postgres://u:xxxxx@h/db", secrets: []string{"hunter2"}},
		{in: "postgres://u@h/db?password=hunter2", want: "postgres://u@h/db?password=xxxxx", secrets: []string{"hunter2"}},
		{in: "postgres://u@h/db?sslmode=require&PassWord=hunter2&sslpassword=keypass", secrets: []string{"hunter2", "keypass"}},
		{in: "postgres://u:p%40ss%2Fword@h/db", secrets: []string{"p@ss/word", "p%40ss%2Fword"}},
		{in: "postgres://u@h/db?password=a%26b%3Dc", secrets: []string{"a&b=c", "a%26b%3Dc"}},
		{in: "host=h user=u password=hunter2 dbname=db", want: "host=h user=u password=xxxxx dbname=db", secrets: []string{"hunter2"}},
		{in: "host=h password = 'hun ter2' dbname=db", want: "host=h password = xxxxx dbname=db", secrets: []string{"hun ter2"}},
		{in: `host=h password='it\'s secret' dbname=db`, want: "host=h password=xxxxx dbname=db", secrets: []string{"it", "secret"}},
		{in: "host=h sslpassword=keypass PASSWORD=hunter2", secrets: []string{"hunter2", "keypass"}},
		{in: "redfish://admin:bmcpw@10.0.0.5?insecure=1", want: "redfish://admin:xxxxx@10.0.0.5?insecure=1", secrets: []string{"bmcpw"}},
		{in: "postgres://u:hunter2@[::1", want: "<unparseable URL>", secrets: []string{"hunter2"}},
	}
	for _, tt := range tests {
		got := RedactURL(tt.in)
		if tt.want != "" && got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, s := range tt.secrets {
			if strings.Contains(got, s) {
				t.Errorf("RedactURL(%q) = %q shows %q", tt.in, got, s)
			}
		}
	}
}

func TestRedactError(t *testing.T) {
	conn := "postgres://u:p%40ss@h/db?password=qsecret"
	err := redactError(errors.Join(ErrInvalid, errors.New(`cannot parse `+conn+`: password "qsecret" and p@ss rejected`)), conn)
	for _, s := range []string{"qsecret", "p@ss", "p%40ss"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("%q shows %q", err, s)
		}
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v lost ErrInvalid", err)
	}
	if errors.Unwrap(err) != nil {
		t.Fatal("the original message is reachable through Unwrap")
	}
}

// TestOpenPostgresHidesPasswords: whichever way the connection fails —
// a URL pgx cannot parse, nothing listening, a database the server
// refuses — the error shows neither the user info's password nor the
// password parameter.
func TestOpenPostgresHidesPasswords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	real, err := url.Parse(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	real.Path = "/no_such_db"
	q := real.Query()
	q.Set("password", "qsecret3")
	real.RawQuery = q.Encode()
	real.User = url.UserPassword(real.User.Username(), "usecret3")
	tests := []struct {
		name, url string
		secrets   []string
	}{
		{"unparseable option", "postgres://u:usecret1@127.0.0.1:1/db?sslmode=bogus&password=qsecret1", []string{"usecret1", "qsecret1"}},
		{"nothing listening", "postgres://u:usecret2@127.0.0.1:1/db?password=qsecret2&connect_timeout=2", []string{"usecret2", "qsecret2"}},
		{"refused by the server", real.String(), []string{"usecret3", "qsecret3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenPostgres(ctx, tt.url, t.TempDir())
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			for _, sec := range tt.secrets {
				if strings.Contains(err.Error(), sec) {
					t.Fatalf("error shows %q: %v", sec, err)
				}
			}
			t.Logf("%v", err)
		})
	}
}
