package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// RegisterRequest is the body of register.
type RegisterRequest struct {
	Username    string `json:"username" minLength:"3" maxLength:"32" pattern:"^[A-Za-z0-9_.-]+$" example:"alice" doc:"3-32 of a-z, 0-9, '_', '.', '-'; folded to lower case, unique case-insensitively."`
	Password    string `json:"password" minLength:"8" maxLength:"128" example:"correct horse battery" doc:"8-128 characters."`
	DisplayName string `json:"display_name,omitempty" required:"false" minLength:"1" maxLength:"64" example:"Alice Liddell" doc:"1-64 characters; defaults to the username."`
}

// LoginRequest is the body of login.
type LoginRequest struct {
	Username string `json:"username" minLength:"1" maxLength:"128" example:"alice" doc:"Case-insensitive."`
	Password string `json:"password" minLength:"1" maxLength:"128" example:"correct horse battery"`
}

// RefreshRequest is the body of refresh and logout.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"256" example:"8J3k0m5Qd1sYx0N4o2Gv7pW9cR6tL1aZ3bE5fH8iK0M" doc:"The refresh token of the session."`
}

type sessionOutput struct {
	Body chat.Session
}

type userOutput struct {
	Body chat.User
}

func (s *Server) registerAccounts() {
	const tag = "Accounts"
	huma.Register(s.api, op("register", http.MethodPost, "/v1/auth/register", "Register an account", tag, http.StatusCreated,
		http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
		func(ctx context.Context, in *struct{ Body RegisterRequest }) (*sessionOutput, error) {
			sess, err := s.Accounts.Register(ctx, in.Body.Username, in.Body.Password, in.Body.DisplayName)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &sessionOutput{Body: sess}, nil
		})

	huma.Register(s.api, op("login", http.MethodPost, "/v1/auth/login", "Log in with username and password", tag, http.StatusOK,
		http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests, http.StatusServiceUnavailable),
		func(ctx context.Context, in *struct{ Body LoginRequest }) (*sessionOutput, error) {
			sess, err := s.Accounts.Login(ctx, in.Body.Username, in.Body.Password, clientIP(ctx))
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &sessionOutput{Body: sess}, nil
		})

	refresh := op("refresh", http.MethodPost, "/v1/auth/refresh", "Rotate a refresh token into a new session", tag, http.StatusOK,
		http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
	refresh.Description = "The presented refresh token stops working. Presenting a refresh token that was already used " +
		"revokes its whole session family (401): refresh one request at a time per session."
	huma.Register(s.api, refresh, func(ctx context.Context, in *struct{ Body RefreshRequest }) (*sessionOutput, error) {
		sess, err := s.Accounts.Refresh(ctx, in.Body.RefreshToken)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &sessionOutput{Body: sess}, nil
	})

	logout := op("logout", http.MethodPost, "/v1/auth/logout", "Log out: revoke a session's refresh tokens", tag, http.StatusNoContent,
		http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
	logout.Description = "Needs only the refresh token. An unknown token still answers 204. Access tokens already issued stay valid until they expire."
	huma.Register(s.api, logout, func(ctx context.Context, in *struct{ Body RefreshRequest }) (*struct{}, error) {
		if err := s.Accounts.Logout(ctx, in.Body.RefreshToken); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{}{}, nil
	})

	huma.Register(s.api, authed(op("getMe", http.MethodGet, "/v1/me", "Get the calling user", tag, http.StatusOK)),
		func(ctx context.Context, _ *struct{}) (*userOutput, error) {
			u, err := s.Accounts.FindUserByID(ctx, principal(ctx).UserID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &userOutput{Body: u}, nil
		})

	byName := authed(op("getUserByName", http.MethodGet, "/v1/users/by-name/{username}", "Find a user by username", tag, http.StatusOK,
		http.StatusNotFound))
	byName.Description = "How a room owner finds the id of a user to add to a private room. Case-insensitive."
	huma.Register(s.api, byName, func(ctx context.Context, in *struct {
		Username string `path:"username" maxLength:"128" example:"alice" doc:"The username, any case."`
	}) (*userOutput, error) {
		u, err := s.Accounts.FindUserByName(ctx, in.Username)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &userOutput{Body: u}, nil
	})
}
