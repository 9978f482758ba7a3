package transport

import (
	"errors"
	"io/fs"
	"syscall"
)

// Control-stream operations (Request.Op).
const (
	OpLogin = "login"
	OpJoin  = "join" // add a connection to a logged-in session, with its token
	OpPwd   = "pwd"
	OpCd    = "cd"
	OpLs    = "ls"
	OpStat  = "stat"
	OpMkdir = "mkdir"
	OpRmdir = "rmdir"
	OpRm    = "rm"
	OpMv    = "mv"
	OpDf    = "df"
	OpGlob  = "glob"    // expand a pattern; Entry.Name holds each match's virtual path
	OpMtime = "chtimes" // set a file's or directory's modification time
)

// Transfer-stream operations (TransferRequest.Op).
const (
	OpGet    = "get"
	OpPut    = "put"
	OpResume = "resume" // which blocks of a partial upload the server holds
	OpHash   = "hash"   // digest of a whole file, as b3sum or sha256sum print it
)

// Hash algorithms for OpHash.
const (
	AlgoBLAKE3 = "blake3"
	AlgoSHA256 = "sha256"
)

// Request is a message the client sends on the control stream. Only the
// fields an operation names are meaningful; the rest stay zero and are
// omitted on the wire.
type Request struct {
	ID       uint64 `cbor:"id"`
	Op       string `cbor:"op"`
	Path     string `cbor:"path,omitempty"`
	To       string `cbor:"to,omitempty"`      // mv: destination
	Parents  bool   `cbor:"parents,omitempty"` // mkdir: create parents, no error if it exists
	Force    bool   `cbor:"force,omitempty"`   // mv: replace an existing destination
	User     string `cbor:"user,omitempty"`    // login
	Password string `cbor:"password,omitempty"`
	Client   string `cbor:"client,omitempty"` // login: client software and version
	Mtime    int64  `cbor:"mtime,omitempty"`  // chtimes: ns since the epoch
	Token    []byte `cbor:"token,omitempty"`  // join: the session's token from login
}

// Response answers the Request with the same ID. Responses come in request
// order. An ls may answer with several Responses; all but the last have
// More set.
type Response struct {
	ID      uint64  `cbor:"id"`
	Err     *Error  `cbor:"err,omitempty"`
	More    bool    `cbor:"more,omitempty"`
	Path    string  `cbor:"path,omitempty"` // pwd, cd, login: working directory
	Entries []Entry `cbor:"entries,omitempty"`
	Stat    *Entry  `cbor:"stat,omitempty"`
	Quota   int64   `cbor:"quota,omitempty"` // df: bytes, 0 = unlimited
	Used    int64   `cbor:"used,omitempty"`  // df: bytes
	// login, df: the user's transfer rate cap on the server, bytes per
	// second over all their transfers; 0 = none. Clients pace batches by
	// it.
	Rate   int64  `cbor:"rate,omitempty"`
	Server string `cbor:"server,omitempty"`
	Token  []byte `cbor:"token,omitempty"` // login: lets more connections join this session
	// ls, glob (last response): entries left out because no client can
	// name them (a backslash, invalid UTF-8 ...), so that a listing or a
	// recursive get can say that something is missing.
	Unnamable int `cbor:"unnamable,omitempty"`
	// ls (last page): up to MaxUnnamableNames of those names, each quoted
	// as a Go string literal (so valid UTF-8), for the user to find them.
	UnnamableNames []string `cbor:"unnamable_names,omitempty"`
}

// MaxUnnamableNames bounds Response.UnnamableNames.
const MaxUnnamableNames = 16

// Entry types. Servers before the special-file types sent TypeOther for
// all of them.
const (
	TypeFile    = "f"
	TypeDir     = "d"
	TypeSymlink = "l"
	TypeFIFO    = "p"
	TypeSocket  = "s"
	TypeCharDev = "c"
	TypeDevice  = "b" // block device
	TypeOther   = "o"
)

// EntryOf describes the file fi as name.
func EntryOf(name string, fi fs.FileInfo) Entry {
	e := Entry{Name: name, Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode().Perm())}
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type = TypeFile
	case m.IsDir():
		e.Type, e.Size = TypeDir, 0
	case m&fs.ModeSymlink != 0:
		e.Type = TypeSymlink
	case m&fs.ModeNamedPipe != 0:
		e.Type = TypeFIFO
	case m&fs.ModeSocket != 0:
		e.Type = TypeSocket
	case m&fs.ModeCharDevice != 0:
		e.Type = TypeCharDev
	case m&fs.ModeDevice != 0:
		e.Type = TypeDevice
	default:
		e.Type = TypeOther
	}
	return e
}

// Entry describes one file. Mtime is in nanoseconds since the Unix epoch.
type Entry struct {
	Name  string `cbor:"name"`
	Type  string `cbor:"type"`
	Size  int64  `cbor:"size"`
	Mtime int64  `cbor:"mtime"`
	Mode  uint32 `cbor:"mode"` // permission bits
}

// TransferRequest is the first frame on a transfer stream, sent by the
// client.
//
// get: the server sends Length bytes of Path starting at Offset (Length -1:
// to the end of the file). put: the client sends Length bytes that belong at
// Offset of a file whose final size is Size.
type TransferRequest struct {
	Op        string `cbor:"op"`
	Path      string `cbor:"path"`
	Offset    int64  `cbor:"off"`
	Length    int64  `cbor:"len"`
	Size      int64  `cbor:"size,omitempty"`    // put, resume: final size of the file
	Mtime     int64  `cbor:"mtime,omitempty"`   // put, resume: ns since epoch; 0 keeps the arrival time
	Force     bool   `cbor:"force,omitempty"`   // put: replace an existing file
	BlockSize int64  `cbor:"bs,omitempty"`      // get, put, resume: block size; 0 means blocks.For(the file's size)
	Fresh     bool   `cbor:"fresh,omitempty"`   // put: discard any partial upload to Path first
	Commit    bool   `cbor:"commit,omitempty"`  // put: this range completes the file; publish it
	Upload    []byte `cbor:"upload,omitempty"`  // put: the client's random ID of this upload (1-32 bytes), the same on all its ranges
	Algo      string `cbor:"algo,omitempty"`    // hash: AlgoBLAKE3 (default) or AlgoSHA256
	Rehash    bool   `cbor:"rehash,omitempty"`  // get: digests of the data as read now, none remembered (a retry after blocks did not verify)
	Mode      uint32 `cbor:"mode,omitempty"`    // put: permission bits of the client's file (0: not known); the committing range's count
	Journal   bool   `cbor:"journal,omitempty"` // put: keep the partial upload resumable even under 4 MiB
}

// TransferReply is the server's frame on a transfer stream: for get, before
// the data (describing exactly the range that follows); for put, after the
// client's trailer (the outcome).
type TransferReply struct {
	Err       *Error  `cbor:"err,omitempty"`
	Size      int64   `cbor:"size"`
	Mtime     int64   `cbor:"mtime"`
	Offset    int64   `cbor:"off"`
	Length    int64   `cbor:"len"`
	BlockSize int64   `cbor:"bs,omitempty"`     // get: block size of the data that follows
	Digest    []byte  `cbor:"digest,omitempty"` // put with commit: the file digest; hash: the digest
	Bad       []int64 `cbor:"bad,omitempty"`    // put: indices of blocks that failed verification
	Blocks    int64   `cbor:"blocks,omitempty"` // resume: number of block records that follow
	Mode      uint32  `cbor:"mode,omitempty"`   // get: permission bits of the server's file
}

// Trailer follows the raw bytes on a transfer stream, from the side that
// sent them. Bytes repeats how many bytes were sent, so that a receiver can
// tell a complete range from a sender that stopped early.
type Trailer struct {
	Bytes  int64  `cbor:"bytes"`
	Digest []byte `cbor:"digest,omitempty"` // file digest: put with commit, get of a whole file
	// Packets the sending connection has sent and declared lost so far
	// (get only): the receiver's QUIC stack sees no loss, and a client
	// widening a striped download needs to tell random loss from a full
	// bottleneck.
	Sent uint64 `cbor:"sent,omitempty"`
	Lost uint64 `cbor:"lost,omitempty"`
}

// Status codes carried in Error.Code.
const (
	CodeNotFound    = "not_found"
	CodeExists      = "exists"
	CodeNotDir      = "not_dir"
	CodeIsDir       = "is_dir"
	CodeNotEmpty    = "not_empty"
	CodePermission  = "permission"
	CodeInvalidPath = "invalid_path"
	CodeInvalid     = "invalid" // a bad argument other than a path
	CodeQuota       = "quota"
	CodeAuth        = "auth"
	CodeProtocol    = "protocol"
	CodeUnsupported = "unsupported"
	CodeShutdown    = "shutdown"
	CodeIntegrity   = "integrity" // data did not verify; Bad names the blocks
	CodeBusy        = "busy"      // the partial upload is held elsewhere, or a commit came while ranges still arrive
	CodeIO          = "io"
)

// Error is a failed operation as sent on the wire. Path is the virtual path
// it concerns, if any; Msg is the cause in words, without the path.
type Error struct {
	Code string `cbor:"code"`
	Msg  string `cbor:"msg"`
	Path string `cbor:"path,omitempty"`
}

func (e *Error) Error() string {
	if e.Path != "" {
		return e.Path + ": " + e.Msg
	}
	return e.Msg
}

// Is lets callers branch on remote errors with the standard sentinels, as
// they would on local ones: errors.Is(err, fs.ErrNotExist).
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeNotFound:
		return target == fs.ErrNotExist
	case CodeExists:
		return target == fs.ErrExist
	case CodePermission:
		return target == fs.ErrPermission
	case CodeNotDir:
		return target == syscall.ENOTDIR
	case CodeIsDir:
		return target == syscall.EISDIR
	case CodeNotEmpty:
		return target == syscall.ENOTEMPTY
	case CodeAuth:
		return target == ErrAuth
	case CodeQuota:
		return target == ErrQuota
	case CodeIntegrity:
		return target == ErrIntegrity
	}
	return false
}

// ErrAuth is matched (errors.Is) by an Error with CodeAuth.
var ErrAuth = errors.New("authentication failed")

// ErrQuota is matched (errors.Is) by an Error with CodeQuota.
var ErrQuota = errors.New("quota exceeded")

// ErrIntegrity is matched (errors.Is) by an Error with CodeIntegrity.
var ErrIntegrity = errors.New("data corrupted in transit")
