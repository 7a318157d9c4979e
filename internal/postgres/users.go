package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

var _ chat.UserStore = (*DB)(nil)

// CreateUser stores a new user; EConflict when the username is taken.
func (db *DB) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Username, u.DisplayName, passwordHash, u.CreatedAt)
	if isUniqueViolation(err) {
		return &chat.Error{Code: chat.EConflict, Field: "body.username", Message: "username is already taken"}
	}
	return dbError(err, "insert user")
}

const userCols = `u.id, u.username, u.display_name, u.created_at`

func scanUser(row pgx.Row, extra ...any) (chat.User, error) {
	var u chat.User
	err := row.Scan(append([]any{&u.ID, &u.Username, &u.DisplayName, &u.CreatedAt}, extra...)...)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// FindUserByID returns a user; ENotFound if none.
func (db *DB) FindUserByID(ctx context.Context, id string) (chat.User, error) {
	if !validID(id) {
		return chat.User{}, chat.Errorf(chat.ENotFound, "user not found")
	}
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = $1`, id))
	return u, userError(err)
}

// FindUserByName returns a user and its password hash; ENotFound if none.
func (db *DB) FindUserByName(ctx context.Context, username string) (chat.User, string, error) {
	var hash string
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userCols+`, u.password_hash FROM users u WHERE u.username = $1`, username), &hash)
	return u, hash, userError(err)
}

func userError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Errorf(chat.ENotFound, "user not found")
	}
	return dbError(err, "find user")
}

// CreateRefreshToken stores a refresh token's hash.
func (db *DB) CreateRefreshToken(ctx context.Context, t chat.RefreshToken) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)`,
		t.Hash, t.FamilyID, t.UserID, t.ExpiresAt)
	return dbError(err, "insert refresh token")
}

// RotateRefreshToken marks oldHash used and stores next in its family.
// Presenting a token that was already used revokes the whole family.
func (db *DB) RotateRefreshToken(ctx context.Context, oldHash []byte, next chat.RefreshToken) (string, error) {
	var userID string
	reused := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var family string
		var expires time.Time
		var used, revoked *time.Time
		err := tx.QueryRow(ctx,
			`SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
			oldHash).Scan(&family, &userID, &expires, &used, &revoked)
		if err != nil {
			return dbError(err, "find refresh token")
		}
		switch {
		case revoked != nil:
			return chat.Errorf(chat.EUnauthenticated, "refresh token revoked")
		case used != nil:
			reused = true
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, family)
			return dbError(err, "revoke refresh family")
		case !expires.After(time.Now()):
			return chat.Errorf(chat.EUnauthenticated, "refresh token expired")
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, oldHash); err != nil {
			return dbError(err, "use refresh token")
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)`,
			next.Hash, family, userID, next.ExpiresAt)
		return dbError(err, "insert refresh token")
	})
	switch {
	case reused:
		return "", chat.Errorf(chat.EUnauthenticated, "refresh token already used; its session has been revoked")
	case chat.ErrorCode(err) == chat.ENotFound:
		return "", chat.Errorf(chat.EUnauthenticated, "invalid refresh token")
	case err != nil:
		return "", err
	}
	return userID, nil
}

// RevokeRefreshFamily revokes the family of the token with hash.
func (db *DB) RevokeRefreshFamily(ctx context.Context, hash []byte) error {
	_, err := db.pool.Exec(ctx,
		`UPDATE refresh_tokens SET revoked_at = now()
		 WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)`, hash)
	return dbError(err, "revoke refresh family")
}
