package track

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Options tune Open.
type Options struct {
	// ArtifactRoot is the directory run artifacts are copied under
	// (<root>/<experiment id>/<run id>/artifacts). "" means "artifacts" next
	// to a SQLite file, and <user data dir>/deepgo/artifacts for PostgreSQL.
	ArtifactRoot string
	// Synchronous is SQLite's synchronous setting: "NORMAL" (the default; in
	// WAL mode a committed write survives a crash of the process, and a power
	// cut may lose the last commits but never corrupts the file) or "FULL"
	// (every commit also survives a power cut, at the cost of an fsync per
	// commit). Ignored for PostgreSQL.
	Synchronous string
}

// EnvStore names the environment variable that, when set, replaces the
// default store location (DefaultURL).
const EnvStore = "DEEPGO_STORE"

// DefaultURL returns the default store: $DEEPGO_STORE if set, otherwise
// deepgo/store.db in the user's data directory ($XDG_DATA_HOME, else
// ~/.local/share on Unix; os.UserConfigDir elsewhere or when there is no
// home directory).
func DefaultURL() string {
	if v := os.Getenv(EnvStore); v != "" {
		return v
	}
	return filepath.Join(dataDir(), "deepgo", "store.db")
}

func dataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" && filepath.Separator == '/' {
		return filepath.Join(home, ".local", "share")
	}
	if d, err := os.UserConfigDir(); err == nil {
		return d
	}
	return os.TempDir()
}

// Open opens (creating and migrating if needed) the store at u:
// "postgres://…" or "postgresql://…" is a PostgreSQL database (pgx URL or
// DSN syntax); "sqlite://PATH", "file:PATH" or a plain path is a SQLite file;
// "" is DefaultURL(). Runs left RUNNING by dead processes are marked KILLED.
func Open(u string) (Store, error) { return OpenOptions(u, Options{}) }

// OpenOptions is Open with options.
func OpenOptions(u string, o Options) (Store, error) {
	if u == "" {
		u = DefaultURL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		s   *sqlStore
		err error
	)
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		s, err = openPostgres(ctx, u, o)
	} else {
		s, err = openSQLite(ctx, u, o)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if _, err := s.ReapDead(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(ctx context.Context, u string, o Options) (*sqlStore, error) {
	path := u
	if p, ok := strings.CutPrefix(u, "sqlite://"); ok {
		path = p
	} else if p, ok := strings.CutPrefix(u, "file:"); ok {
		path = p
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.Contains(path, "://") {
		return nil, fmt.Errorf("track.Open: %q is not a SQLite file path (no '?', '#' or other URL schemes; PostgreSQL URLs start with postgres://)", u)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("track.Open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("track.Open: creating the store's directory: %w", err)
	}
	sync := strings.ToUpper(o.Synchronous)
	switch sync {
	case "":
		sync = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, fmt.Errorf("track.Open: Synchronous %q, want NORMAL or FULL", o.Synchronous)
	}
	// Every transaction takes the write lock up front (BEGIN IMMEDIATE) so
	// that concurrent writers in several processes queue on busy_timeout
	// instead of failing with SQLITE_BUSY when upgrading a read lock.
	dsn := abs + "?_txlock=immediate&_busy_timeout=30000&_journal_mode=WAL&_synchronous=" + sync + "&_foreign_keys=1"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("track.Open: %s: %w", abs, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("track.Open: opening SQLite store %s: %w", abs, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("track.Open: SQLite store %s: journal_mode is %q (err %v), want wal", abs, mode, err)
	}
	root := o.ArtifactRoot
	if root == "" {
		root = filepath.Join(filepath.Dir(abs), "artifacts")
	}
	return newSQLStore(db, false, abs, root)
}

func openPostgres(ctx context.Context, u string, o Options) (*sqlStore, error) {
	shown := redact(u)
	cu := u
	if pu, err := url.Parse(u); err == nil && !pu.Query().Has("connect_timeout") {
		q := pu.Query()
		q.Set("connect_timeout", "10")
		pu.RawQuery = q.Encode()
		cu = pu.String()
	}
	db, err := sql.Open("pgx", cu)
	if err != nil {
		return nil, fmt.Errorf("track.Open: PostgreSQL URL %s: %w", shown, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("track.Open: cannot connect to PostgreSQL at %s: %w", shown, err)
	}
	root := o.ArtifactRoot
	if root == "" {
		root = filepath.Join(dataDir(), "deepgo", "artifacts")
	}
	return newSQLStore(db, true, shown, root)
}

// redact removes the password from a URL.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if pu.User != nil {
		if _, has := pu.User.Password(); has {
			pu.User = url.UserPassword(pu.User.Username(), "xxxxx")
		}
	}
	q := pu.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		pu.RawQuery = q.Encode()
	}
	return pu.String()
}

func newSQLStore(db *sql.DB, postgres bool, shown, root string) (*sqlStore, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("track.Open: artifact root: %w", err)
	}
	host, _ := os.Hostname()
	return &sqlStore{db: db, postgres: postgres, url: shown, artifactRoot: root, host: host, pid: os.Getpid()}, nil
}
