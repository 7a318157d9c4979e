package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/limits"
)

// Service implements chat.AccountService over a chat.UserStore.
type Service struct {
	users      chat.UserStore
	tokens     *Tokens
	refreshTTL time.Duration
	// dummyHash is checked against when a login names an unknown user, so
	// unknown users and wrong passwords take the same time.
	dummyHash string
	// hashing bounds the argon2id hashes in progress (19 MiB each).
	hashing *limits.Gate
	// logins limits failed logins; nil is no limit.
	logins chat.LoginThrottle
}

var _ chat.AccountService = (*Service)(nil)

// Option configures a Service.
type Option func(*Service)

// WithHashGate runs every password hash, the dummy one for unknown users
// included, through g. Without it hashes are bounded by GOMAXPROCS with
// limits.HashWait.
func WithHashGate(g *limits.Gate) Option { return func(s *Service) { s.hashing = g } }

// WithLoginThrottle limits failed logins with t.
func WithLoginThrottle(t chat.LoginThrottle) Option { return func(s *Service) { s.logins = t } }

// NewService returns an account service.
func NewService(users chat.UserStore, tokens *Tokens, refreshTTL time.Duration, opts ...Option) (*Service, error) {
	if refreshTTL <= 0 {
		return nil, fmt.Errorf("refresh token lifetime must be positive, got %s", refreshTTL)
	}
	dummy, err := HashPassword(uuid.NewString())
	if err != nil {
		return nil, err
	}
	s := &Service{users: users, tokens: tokens, refreshTTL: refreshTTL, dummyHash: dummy}
	for _, o := range opts {
		o(s)
	}
	if s.hashing == nil {
		s.hashing = limits.NewGate(0, limits.HashWait)
	}
	return s, nil
}

// hash hashes a new password in a hashing slot.
func (s *Service) hash(ctx context.Context, password string) (hash string, err error) {
	if gerr := s.hashing.Do(ctx, func() { hash, err = HashPassword(password) }); gerr != nil {
		return "", gerr
	}
	return hash, err
}

// check checks password against encoded in a hashing slot.
func (s *Service) check(ctx context.Context, encoded, password string) (ok bool, err error) {
	if gerr := s.hashing.Do(ctx, func() { ok, err = CheckPassword(encoded, password) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

func badCredentials() error {
	return chat.Errorf(chat.EUnauthenticated, "invalid username or password")
}

// Register creates an account and opens a session for it.
func (s *Service) Register(ctx context.Context, username, password, displayName string) (chat.Session, error) {
	name, err := chat.NormalizeUsername("body.username", username)
	if err != nil {
		return chat.Session{}, err
	}
	if err := checkPassword(password); err != nil {
		return chat.Session{}, err
	}
	if displayName == "" {
		displayName = name
	} else if err := chat.CheckText("body.display_name", displayName, chat.DisplayNameMin, chat.DisplayNameMax); err != nil {
		return chat.Session{}, err
	}
	hash, err := s.hash(ctx, password)
	if chat.ErrorCode(err) == chat.EUnavailable {
		return chat.Session{}, err
	} else if err != nil {
		return chat.Session{}, fmt.Errorf("register: %w", err)
	}
	u := chat.User{ID: uuid.NewString(), Username: name, DisplayName: displayName, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.users.CreateUser(ctx, u, hash); err != nil {
		return chat.Session{}, err
	}
	return s.open(ctx, u, uuid.NewString())
}

func checkPassword(p string) error {
	if err := chat.CheckText("body.password", p, 0, chat.PasswordMax); err != nil {
		return err
	}
	if n := len([]rune(p)); n < chat.PasswordMin {
		return chat.Invalid("body.password", "password must be %d to %d characters", chat.PasswordMin, chat.PasswordMax)
	}
	return nil
}

// Login checks a username and password from clientIP and opens a session.
// Under a login throttle the attempt is counted as a failure before the
// password is checked, and the count is taken back unless it did fail: so
// concurrent wrong guesses cannot all slip under the limit, and over it
// even the right password answers ETooMany until the window passes.
func (s *Service) Login(ctx context.Context, username, password, clientIP string) (chat.Session, error) {
	if s.logins == nil {
		return s.login(ctx, username, password)
	}
	// Unknown and impossible usernames are counted like known ones.
	key, err := chat.NormalizeUsername("body.username", username)
	if err != nil {
		key = strings.ToLower(username)
	}
	if err := s.logins.ReserveLogin(ctx, key, clientIP); err != nil {
		return chat.Session{}, err
	}
	sess, err := s.login(ctx, username, password)
	if chat.ErrorCode(err) != chat.EUnauthenticated {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// A release that fails leaves one failure too many counted until
		// the window ends; the login's own answer stands.
		_ = s.logins.ReleaseLogin(rctx, key, clientIP)
	}
	return sess, err
}

// login checks a username and password and opens a session.
func (s *Service) login(ctx context.Context, username, password string) (chat.Session, error) {
	name, err := chat.NormalizeUsername("body.username", username)
	if err != nil {
		// Not a possible username: answer like any unknown user.
		return chat.Session{}, s.unknownUser(ctx, password)
	}
	u, hash, err := s.users.FindUserByName(ctx, name)
	if chat.ErrorCode(err) == chat.ENotFound {
		return chat.Session{}, s.unknownUser(ctx, password)
	} else if err != nil {
		return chat.Session{}, err
	}
	ok, err := s.check(ctx, hash, password)
	if chat.ErrorCode(err) == chat.EUnavailable {
		return chat.Session{}, err
	} else if err != nil {
		return chat.Session{}, fmt.Errorf("login %s: %w", u.ID, err)
	}
	if !ok {
		return chat.Session{}, badCredentials()
	}
	return s.open(ctx, u, uuid.NewString())
}

// unknownUser spends a hash like a wrong password would, so unknown users
// and wrong passwords take the same time and the same hashing slots.
func (s *Service) unknownUser(ctx context.Context, password string) error {
	if _, err := s.check(ctx, s.dummyHash, password); chat.ErrorCode(err) == chat.EUnavailable {
		return err
	}
	return badCredentials()
}

// Refresh rotates a refresh token into a new session of the same family.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (chat.Session, error) {
	tok, hash, err := NewRefreshToken()
	if err != nil {
		return chat.Session{}, err
	}
	next := chat.RefreshToken{Hash: hash, ExpiresAt: time.Now().Add(s.refreshTTL)}
	userID, err := s.users.RotateRefreshToken(ctx, HashRefreshToken(refreshToken), next)
	if err != nil {
		return chat.Session{}, err
	}
	u, err := s.users.FindUserByID(ctx, userID)
	if err != nil {
		return chat.Session{}, err
	}
	return s.session(u, tok)
}

// Logout revokes the refresh token's family; unknown tokens are fine.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	return s.users.RevokeRefreshFamily(ctx, HashRefreshToken(refreshToken))
}

// Authenticate checks an access token.
func (s *Service) Authenticate(_ context.Context, accessToken string) (chat.Principal, error) {
	return s.tokens.Parse(accessToken)
}

// FindUserByID returns a user.
func (s *Service) FindUserByID(ctx context.Context, id string) (chat.User, error) {
	return s.users.FindUserByID(ctx, id)
}

// FindUserByName returns a user by (case-insensitive) username.
func (s *Service) FindUserByName(ctx context.Context, username string) (chat.User, error) {
	name, err := chat.NormalizeUsername("path.username", username)
	if err != nil {
		return chat.User{}, chat.Errorf(chat.ENotFound, "user not found")
	}
	u, _, err := s.users.FindUserByName(ctx, name)
	return u, err
}

// open starts a new refresh family for u and returns its first session.
func (s *Service) open(ctx context.Context, u chat.User, familyID string) (chat.Session, error) {
	tok, hash, err := NewRefreshToken()
	if err != nil {
		return chat.Session{}, err
	}
	rt := chat.RefreshToken{Hash: hash, FamilyID: familyID, UserID: u.ID, ExpiresAt: time.Now().Add(s.refreshTTL)}
	if err := s.users.CreateRefreshToken(ctx, rt); err != nil {
		return chat.Session{}, err
	}
	return s.session(u, tok)
}

func (s *Service) session(u chat.User, refreshToken string) (chat.Session, error) {
	access, _, err := s.tokens.Issue(u.ID)
	if err != nil {
		return chat.Session{}, err
	}
	return chat.Session{
		User:             u,
		AccessToken:      access,
		TokenType:        "Bearer",
		ExpiresIn:        int64(s.tokens.TTL() / time.Second),
		RefreshToken:     refreshToken,
		RefreshExpiresIn: int64(s.refreshTTL / time.Second),
	}, nil
}
