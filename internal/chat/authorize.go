package chat

// Need is what an operation requires of its caller in a room.
type Need int

// Operation requirements.
const (
	NeedVisible Need = iota // see the room: anyone for public rooms, members for private
	NeedMember              // be a member
	NeedOwner               // be the owner
)

// Authorize decides whether a caller with role (empty for a non-member) may
// do an operation needing need in a room of visibility vis. Private rooms are
// invisible to outsiders (ENotFound, never EForbidden), so they never leak.
func Authorize(vis Visibility, role Role, need Need) error {
	if role == "" && vis == Private {
		return Errorf(ENotFound, "room not found")
	}
	switch {
	case need == NeedMember && role == "":
		return Errorf(EForbidden, "you are not a member of this room")
	case need == NeedOwner && role != RoleOwner:
		return Errorf(EForbidden, "only the room owner can do this")
	}
	return nil
}
