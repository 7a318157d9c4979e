package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// CreateRoomRequest is the body of createRoom.
type CreateRoomRequest struct {
	Name       string          `json:"name" minLength:"1" maxLength:"64" example:"general" doc:"1-64 characters, not only white space."`
	Topic      string          `json:"topic,omitempty" required:"false" maxLength:"512" example:"Anything goes" doc:"0-512 characters."`
	Visibility chat.Visibility `json:"visibility" enum:"public,private" example:"public" doc:"public rooms are listed and open to join; private rooms are invisible to non-members."`
}

// UpdateRoomRequest is the body of updateRoom; absent fields stay as they are.
type UpdateRoomRequest struct {
	Name  *string `json:"name,omitempty" required:"false" minLength:"1" maxLength:"64" example:"general"`
	Topic *string `json:"topic,omitempty" required:"false" maxLength:"512" example:"Release planning"`
}

// RoomList is a page of rooms, newest first.
type RoomList struct {
	Rooms      []chat.Room `json:"rooms" nullable:"false"`
	NextCursor string      `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

// MemberList is a room's members.
type MemberList struct {
	Members []chat.Member `json:"members" nullable:"false"`
}

// RoomPath is the path parameter of room operations.
type RoomPath struct {
	RoomID string `path:"room_id" maxLength:"64" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d" doc:"Room id."`
}

// MemberPath is the path parameters of member operations.
type MemberPath struct {
	RoomPath
	UserID string `path:"user_id" maxLength:"64" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f" doc:"User id."`
}

type roomOutput struct{ Body chat.Room }

type memberOutput struct{ Body chat.Member }

func (s *Server) registerRooms() {
	const tag = "Rooms"
	huma.Register(s.api, authed(op("listRooms", http.MethodGet, "/v1/rooms", "List rooms", tag, http.StatusOK,
		http.StatusUnprocessableEntity)),
		func(ctx context.Context, in *struct {
			Scope  chat.RoomScope `query:"scope" enum:"joined,public" default:"joined" doc:"joined: rooms you are a member of; public: every public room."`
			Cursor string         `query:"cursor" maxLength:"200" doc:"next_cursor of the previous page."`
			Limit  int            `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`
		}) (*struct{ Body RoomList }, error) {
			rooms, next, err := s.Rooms.FindRooms(ctx, principal(ctx).UserID, chat.RoomFilter{Scope: in.Scope, Cursor: in.Cursor, Limit: in.Limit})
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			if rooms == nil {
				rooms = []chat.Room{}
			}
			return &struct{ Body RoomList }{RoomList{Rooms: rooms, NextCursor: next}}, nil
		})

	huma.Register(s.api, authed(op("createRoom", http.MethodPost, "/v1/rooms", "Create a room", tag, http.StatusCreated,
		http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)),
		func(ctx context.Context, in *struct{ Body CreateRoomRequest }) (*roomOutput, error) {
			room, err := s.Rooms.CreateRoom(ctx, principal(ctx).UserID, chat.RoomCreate(in.Body))
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &roomOutput{room}, nil
		})

	huma.Register(s.api, authed(op("getRoom", http.MethodGet, "/v1/rooms/{room_id}", "Get a room", tag, http.StatusOK,
		http.StatusNotFound)),
		func(ctx context.Context, in *RoomPath) (*roomOutput, error) {
			room, err := s.Rooms.FindRoom(ctx, principal(ctx).UserID, in.RoomID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &roomOutput{room}, nil
		})

	update := authed(op("updateRoom", http.MethodPatch, "/v1/rooms/{room_id}", "Update a room's name or topic", tag, http.StatusOK,
		http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity))
	update.Description = "Owner only. Absent fields stay as they are. A change records a room.updated event (last_seq moves); " +
		"a PATCH that changes nothing answers the room and records nothing."
	huma.Register(s.api, update,
		func(ctx context.Context, in *struct {
			RoomPath
			Body UpdateRoomRequest
		}) (*roomOutput, error) {
			room, err := s.Rooms.UpdateRoom(ctx, principal(ctx).UserID, in.RoomID, chat.RoomUpdate(in.Body))
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &roomOutput{room}, nil
		})

	huma.Register(s.api, authed(op("deleteRoom", http.MethodDelete, "/v1/rooms/{room_id}", "Delete a room", tag, http.StatusNoContent,
		http.StatusForbidden, http.StatusNotFound)),
		func(ctx context.Context, in *RoomPath) (*struct{}, error) {
			if err := s.Rooms.DeleteRoom(ctx, principal(ctx).UserID, in.RoomID); err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{}{}, nil
		})

	huma.Register(s.api, authed(op("joinRoom", http.MethodPost, "/v1/rooms/{room_id}/join", "Join a public room", tag, http.StatusOK,
		http.StatusNotFound)),
		func(ctx context.Context, in *RoomPath) (*memberOutput, error) {
			m, err := s.Rooms.JoinRoom(ctx, principal(ctx).UserID, in.RoomID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &memberOutput{m}, nil
		})

	huma.Register(s.api, authed(op("leaveRoom", http.MethodPost, "/v1/rooms/{room_id}/leave", "Leave a room", tag, http.StatusNoContent,
		http.StatusNotFound, http.StatusConflict)),
		func(ctx context.Context, in *RoomPath) (*struct{}, error) {
			if err := s.Rooms.LeaveRoom(ctx, principal(ctx).UserID, in.RoomID); err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{}{}, nil
		})

	huma.Register(s.api, authed(op("listMembers", http.MethodGet, "/v1/rooms/{room_id}/members", "List a room's members", tag, http.StatusOK,
		http.StatusForbidden, http.StatusNotFound)),
		func(ctx context.Context, in *RoomPath) (*struct{ Body MemberList }, error) {
			ms, err := s.Rooms.FindMembers(ctx, principal(ctx).UserID, in.RoomID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			if ms == nil {
				ms = []chat.Member{}
			}
			return &struct{ Body MemberList }{MemberList{ms}}, nil
		})

	huma.Register(s.api, authed(op("addMember", http.MethodPut, "/v1/rooms/{room_id}/members/{user_id}", "Add a member (owner only)", tag, http.StatusOK,
		http.StatusForbidden, http.StatusNotFound)),
		func(ctx context.Context, in *MemberPath) (*memberOutput, error) {
			m, err := s.Rooms.AddMember(ctx, principal(ctx).UserID, in.RoomID, in.UserID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &memberOutput{m}, nil
		})

	huma.Register(s.api, authed(op("removeMember", http.MethodDelete, "/v1/rooms/{room_id}/members/{user_id}", "Remove a member (owner only)", tag, http.StatusNoContent,
		http.StatusForbidden, http.StatusNotFound, http.StatusConflict)),
		func(ctx context.Context, in *MemberPath) (*struct{}, error) {
			if err := s.Rooms.RemoveMember(ctx, principal(ctx).UserID, in.RoomID, in.UserID); err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{}{}, nil
		})
}
