package chat

// Need is what an operation requires of its caller in a room.
type Need int

// Operation requirements.
const (
	NeedVisible Need = iota // see the room: anyone for public rooms, members for private
	NeedMember              // be a member
	NeedOwner               // be the owner
	// Needs about one message: a member first (checked by Authorize), then,
	// once the message is found, its author (checked by AuthorizeAuthor).
	NeedAuthor        // be the message's author (editing)
	NeedAuthorOrOwner // be the message's author or the room's owner (deleting)
)

// Authorize decides whether a caller with role (empty for a non-member) may
// do an operation needing need in a room of visibility vis. Private rooms are
// invisible to outsiders (ENotFound, never EForbidden), so they never leak.
// For the message needs it decides the room part: the caller is a member.
func Authorize(vis Visibility, role Role, need Need) error {
	if role == "" && vis == Private {
		return Errorf(ENotFound, "room not found")
	}
	switch {
	case need != NeedVisible && need != NeedOwner && role == "":
		return Errorf(EForbidden, "you are not a member of this room")
	case need == NeedOwner && role != RoleOwner:
		return Errorf(EForbidden, "only the room owner can do this")
	}
	return nil
}

// AuthorizeAuthor decides the message part of a message need, for a member
// (Authorize passed) with role, once the message is known to exist: author
// says whether the caller wrote it.
func AuthorizeAuthor(role Role, need Need, author bool) error {
	switch {
	case need == NeedAuthor && !author:
		return Errorf(EForbidden, "only the author can edit a message")
	case need == NeedAuthorOrOwner && !author && role != RoleOwner:
		return Errorf(EForbidden, "only the author or the room owner can delete a message")
	}
	return nil
}
