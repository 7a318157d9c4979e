package chat_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

// TestAuthorize is the whole permission matrix: every visibility, caller
// role and requirement, with the error code each must give ("" for allowed).
func TestAuthorize(t *testing.T) {
	const ok chat.Code = ""
	nonMember := chat.Role("")
	for _, tc := range []struct {
		vis  chat.Visibility
		role chat.Role
		need chat.Need
		want chat.Code
	}{
		// Public rooms: anyone sees them; members-only calls are 403 for
		// others; owner-only calls are 403 for everyone but the owner.
		{chat.Public, nonMember, chat.NeedVisible, ok},
		{chat.Public, nonMember, chat.NeedMember, chat.EForbidden},
		{chat.Public, nonMember, chat.NeedOwner, chat.EForbidden},
		{chat.Public, chat.RoleMember, chat.NeedVisible, ok},
		{chat.Public, chat.RoleMember, chat.NeedMember, ok},
		{chat.Public, chat.RoleMember, chat.NeedOwner, chat.EForbidden},
		{chat.Public, chat.RoleOwner, chat.NeedVisible, ok},
		{chat.Public, chat.RoleOwner, chat.NeedMember, ok},
		{chat.Public, chat.RoleOwner, chat.NeedOwner, ok},
		// Private rooms: outsiders get 404 on everything, so the room never
		// leaks; members are as in public rooms.
		{chat.Private, nonMember, chat.NeedVisible, chat.ENotFound},
		{chat.Private, nonMember, chat.NeedMember, chat.ENotFound},
		{chat.Private, nonMember, chat.NeedOwner, chat.ENotFound},
		{chat.Private, chat.RoleMember, chat.NeedVisible, ok},
		{chat.Private, chat.RoleMember, chat.NeedMember, ok},
		{chat.Private, chat.RoleMember, chat.NeedOwner, chat.EForbidden},
		{chat.Private, chat.RoleOwner, chat.NeedVisible, ok},
		{chat.Private, chat.RoleOwner, chat.NeedMember, ok},
		{chat.Private, chat.RoleOwner, chat.NeedOwner, ok},
		// Message needs: the room part asks for a member (the author
		// part is AuthorizeAuthor's, below).
		{chat.Public, nonMember, chat.NeedAuthor, chat.EForbidden},
		{chat.Public, nonMember, chat.NeedAuthorOrOwner, chat.EForbidden},
		{chat.Public, chat.RoleMember, chat.NeedAuthor, ok},
		{chat.Public, chat.RoleMember, chat.NeedAuthorOrOwner, ok},
		{chat.Public, chat.RoleOwner, chat.NeedAuthor, ok},
		{chat.Private, nonMember, chat.NeedAuthor, chat.ENotFound},
		{chat.Private, nonMember, chat.NeedAuthorOrOwner, chat.ENotFound},
		{chat.Private, chat.RoleMember, chat.NeedAuthorOrOwner, ok},
	} {
		role := string(tc.role)
		if role == "" {
			role = "nonmember"
		}
		t.Run(fmt.Sprintf("%s/%s/%s", tc.vis, role, needName(tc.need)), func(t *testing.T) {
			err := chat.Authorize(tc.vis, tc.role, tc.need)
			if tc.want == ok {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
				return
			}
			if got := chat.ErrorCode(err); err == nil || got != tc.want {
				t.Fatalf("Authorize = %v (code %q), want code %q", err, got, tc.want)
			}
		})
	}

	t.Run("Author", func(t *testing.T) {
		for _, tc := range []struct {
			role   chat.Role
			need   chat.Need
			author bool
			want   chat.Code
		}{
			{chat.RoleMember, chat.NeedAuthor, true, ok},
			{chat.RoleMember, chat.NeedAuthor, false, chat.EForbidden},
			{chat.RoleOwner, chat.NeedAuthor, true, ok},
			{chat.RoleOwner, chat.NeedAuthor, false, chat.EForbidden}, // the owner may delete, not edit
			{chat.RoleMember, chat.NeedAuthorOrOwner, true, ok},
			{chat.RoleMember, chat.NeedAuthorOrOwner, false, chat.EForbidden},
			{chat.RoleOwner, chat.NeedAuthorOrOwner, false, ok},
			{chat.RoleOwner, chat.NeedAuthorOrOwner, true, ok},
			{chat.RoleMember, chat.NeedMember, false, ok}, // reacting: any member
		} {
			t.Run(fmt.Sprintf("%s/%s/author=%v", tc.role, needName(tc.need), tc.author), func(t *testing.T) {
				err := chat.AuthorizeAuthor(tc.role, tc.need, tc.author)
				if got := chat.ErrorCode(err); (err == nil) != (tc.want == ok) || err != nil && got != tc.want {
					t.Fatalf("AuthorizeAuthor = %v, want code %q", err, tc.want)
				}
			})
		}
	})

	// An outsider learns the same about a private room whatever they ask:
	// one bare not-found error, as for a room that does not exist (the
	// end-to-end tests compare it with a missing room's answer).
	t.Run("PrivateLooksMissing", func(t *testing.T) {
		var first *chat.Error
		for _, need := range []chat.Need{chat.NeedVisible, chat.NeedMember, chat.NeedOwner} {
			var ce *chat.Error
			if err := chat.Authorize(chat.Private, "", need); !errors.As(err, &ce) || ce.Field != "" || ce.Err != nil {
				t.Fatalf("need %s: %#v, want a bare not-found error", needName(need), err)
			}
			if first == nil {
				first = ce
			}
			if *ce != *first {
				t.Fatalf("need %s: %#v, need visible: %#v", needName(need), ce, first)
			}
		}
	})
}

func needName(n chat.Need) string {
	switch n {
	case chat.NeedVisible:
		return "visible"
	case chat.NeedMember:
		return "member"
	case chat.NeedOwner:
		return "owner"
	case chat.NeedAuthor:
		return "author"
	case chat.NeedAuthorOrOwner:
		return "author-or-owner"
	}
	return fmt.Sprintf("need%d", n)
}
