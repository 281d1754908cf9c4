// Package track records training runs and registers models, on MLflow's
// model: experiments hold runs; a run has write-once params, overwritable
// tags, metric histories of (key, value, step, timestamp) points and
// artifacts (files copied under an artifact root); a model registry holds
// named models with integer versions that point at a run's model package,
// and aliases (such as "production") that each name one version and move
// between versions.
//
// Storage is behind the Store interface, with two backends on database/sql:
// an embedded SQLite file (modernc.org/sqlite, pure Go; the default, in the
// user's data directory) and PostgreSQL (github.com/jackc/pgx/v5) for a
// store shared by a team. Open picks the backend from the URL. Both share
// one versioned schema, migrated on open.
//
// Logger is a train.Callback that records a train.Fit run without slowing
// it: points go through a buffered channel to a goroutine that writes them
// in one transaction every 200 ms (or every 1000 points). A run whose
// process died without ending it (SIGKILL, power cut) is marked KILLED the
// next time the store is opened or its runs are read: the writer records its
// PID, host name and a heartbeat, and a RUNNING run whose heartbeat is stale,
// or whose PID is gone on this host, cannot still be running.
package track

import (
	"context"
	"errors"
	"time"
)

// Status is a run's lifecycle state (MLflow's RunStatus).
type Status string

// Run statuses.
const (
	// StatusRunning: the run is being written.
	StatusRunning Status = "RUNNING"
	// StatusFinished: the run ended normally.
	StatusFinished Status = "FINISHED"
	// StatusFailed: the run ended with an error.
	StatusFailed Status = "FAILED"
	// StatusKilled: the run was interrupted, or its process died.
	StatusKilled Status = "KILLED"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusRunning, StatusFinished, StatusFailed, StatusKilled:
		return true
	}
	return false
}

// Errors returned (wrapped, with details) by every Store; test with
// errors.Is.
var (
	// ErrNotFound: the experiment, run, model, version or alias does not
	// exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a param re-written with a different value, or a name that
	// already exists.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a key, name or value that breaks the rules (control
	// characters, too long, empty).
	ErrInvalid = errors.New("invalid")
)

// DefaultExperiment is the name of the experiment that always exists (its ID
// is "0", as in MLflow); runs created without an experiment go there.
const DefaultExperiment = "Default"

// Experiment groups runs.
type Experiment struct {
	// ID is the experiment's ID ("0" for DefaultExperiment).
	ID string `json:"id"`
	// Name is unique in the store.
	Name string `json:"name"`
	// CreatedAt is when the experiment was created.
	CreatedAt time.Time `json:"created_at"`
}

// Metric is one point of a metric's history. Value may be NaN or ±Inf; it is
// stored and returned as such (encoding/json cannot encode those: use
// JSONFloat when serving).
type Metric struct {
	// Key names the metric ("batch_loss", "val_acc").
	Key string `json:"key"`
	// Value is the metric's value.
	Value float64 `json:"value"`
	// Step is the training step or epoch the value belongs to.
	Step int64 `json:"step"`
	// Time is when the value was logged (stored with millisecond precision).
	Time time.Time `json:"time"`
}

// Artifact is a file recorded for a run.
type Artifact struct {
	// Path is the artifact's path relative to the run's artifact directory,
	// with forward slashes ("model/model.json").
	Path string `json:"path"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
}

// Run is a run's record. Params, Tags and Metrics are filled by GetRun and
// by ListRuns (Metrics holds the latest point of every key: the one with the
// largest step, then the latest time).
type Run struct {
	// ID is 32 lowercase hex digits.
	ID string `json:"id"`
	// Name is a human-readable name (not unique).
	Name string `json:"name"`
	// ExperimentID is the ID of the run's experiment.
	ExperimentID string `json:"experiment_id"`
	// Status is the run's state.
	Status Status `json:"status"`
	// StartTime is when the run was created.
	StartTime time.Time `json:"start_time"`
	// EndTime is when the run ended (zero while RUNNING).
	EndTime time.Time `json:"end_time,omitzero"`
	// ArtifactDir is the directory the run's artifacts are copied into.
	ArtifactDir string `json:"artifact_dir"`
	// PID, Host and Heartbeat identify the writing process and when it was
	// last known alive (used to detect runs whose process died).
	PID       int       `json:"pid,omitempty"`
	Host      string    `json:"host,omitempty"`
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	// Params are the run's write-once parameters.
	Params map[string]string `json:"params"`
	// Tags are the run's tags (system info is recorded as "sys.*" tags).
	Tags map[string]string `json:"tags"`
	// Metrics maps each metric key to its latest point.
	Metrics map[string]Metric `json:"metrics"`
}

// NewRun describes a run to create.
type NewRun struct {
	// Experiment is the experiment's name; it is created if missing ("" means
	// DefaultExperiment).
	Experiment string
	// Name is the run's name ("" gets a generated one).
	Name string
	// Tags are set on the run at creation.
	Tags map[string]string
	// StartTime is the run's start (zero means now); it is also the run's
	// first heartbeat.
	StartTime time.Time
	// PID and Host identify the writing process (0 and "" mean this process
	// and this host). Set PID to -1 for a run written by no live process
	// (an import): it is never considered dead by PID.
	PID  int
	Host string
}

// RunFilter selects runs in ListRuns. Zero fields do not filter.
type RunFilter struct {
	// ExperimentID keeps the runs of this experiment.
	ExperimentID string
	// Experiment keeps the runs of the experiment with this name.
	Experiment string
	// Statuses keeps runs with one of these statuses.
	Statuses []Status
	// NameContains keeps runs whose name contains this (case-sensitive).
	NameContains string
	// Limit caps the number of runs returned (0: no cap).
	Limit int
}

// Batch is a set of writes to one run, applied in one transaction.
type Batch struct {
	// Metrics are appended to their histories.
	Metrics []Metric
	// Params are written once (see Store.LogParam).
	Params map[string]string
	// Tags are set, overwriting.
	Tags map[string]string
}

// ModelVersion is one version of a registered model.
type ModelVersion struct {
	// Name is the registered model's name.
	Name string `json:"name"`
	// Version counts from 1 per model.
	Version int `json:"version"`
	// RunID is the run that produced the model ("" if none).
	RunID string `json:"run_id,omitempty"`
	// Source is the model package's path (a directory with model.json).
	Source string `json:"source"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// CreatedAt is when the version was registered.
	CreatedAt time.Time `json:"created_at"`
	// Aliases are the aliases that point at this version, sorted.
	Aliases []string `json:"aliases"`
}

// RegisteredModel is a named model with its versions.
type RegisteredModel struct {
	// Name is unique in the store.
	Name string `json:"name"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// CreatedAt is when the model was first registered.
	CreatedAt time.Time `json:"created_at"`
	// Versions are the model's versions, oldest first.
	Versions []ModelVersion `json:"versions"`
	// Aliases maps each alias to the version it points at.
	Aliases map[string]int `json:"aliases"`
}

// Store is a tracking store. Methods are safe for concurrent use, also by
// several processes sharing one store. Errors wrap ErrNotFound, ErrConflict
// or ErrInvalid where those apply.
type Store interface {
	// CreateExperiment creates an experiment; ErrConflict if the name exists.
	CreateExperiment(ctx context.Context, name string) (Experiment, error)
	// Experiment returns the experiment with this ID or, failing that, this
	// name.
	Experiment(ctx context.Context, idOrName string) (Experiment, error)
	// ListExperiments returns every experiment, by ID.
	ListExperiments(ctx context.Context) ([]Experiment, error)

	// CreateRun creates a RUNNING run.
	CreateRun(ctx context.Context, r NewRun) (Run, error)
	// GetRun returns a run with its params, tags and latest metrics (after
	// marking it KILLED if its process died; see package doc).
	GetRun(ctx context.Context, id string) (Run, error)
	// ListRuns returns the runs that pass f, newest first, with params, tags
	// and latest metrics (dead RUNNING runs are marked KILLED first).
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// EndRun sets a run's final status and end time (zero end means now).
	EndRun(ctx context.Context, id string, status Status, end time.Time) error
	// Heartbeat records that the run's writer is alive now.
	Heartbeat(ctx context.Context, id string) error
	// DeleteRun deletes a run, its params, tags, metrics and artifact
	// records, and its artifact directory; ErrConflict if a registered model
	// version points at it.
	DeleteRun(ctx context.Context, id string) error
	// ReapDead marks KILLED every RUNNING run whose heartbeat is older than
	// StaleAfter or whose PID no longer exists on this host, and returns
	// their IDs.
	ReapDead(ctx context.Context) ([]string, error)

	// LogParam writes a param. Writing the same value again is fine; a
	// different value is an ErrConflict naming the key and both values.
	LogParam(ctx context.Context, runID, key, value string) error
	// SetTag sets a tag, overwriting.
	SetTag(ctx context.Context, runID, key, value string) error
	// LogMetric appends one point to a metric's history (zero Time means
	// now).
	LogMetric(ctx context.Context, runID string, m Metric) error
	// LogBatch applies a batch in one transaction (all or nothing) and
	// refreshes the run's heartbeat.
	LogBatch(ctx context.Context, runID string, b Batch) error
	// MetricHistory returns the history of each key (all keys if none are
	// given), each sorted by step, then time, then logging order.
	MetricHistory(ctx context.Context, runID string, keys ...string) (map[string][]Metric, error)

	// LogArtifact copies a file, or a directory recursively, to
	// <run's ArtifactDir>/<dest> (dest "" means the base name of src) and
	// records the copied files.
	LogArtifact(ctx context.Context, runID, src, dest string) ([]Artifact, error)
	// ListArtifacts returns the run's artifacts, by path.
	ListArtifacts(ctx context.Context, runID string) ([]Artifact, error)

	// RegisterModel adds a version to a registered model (creating the model
	// if needed) pointing at source, a model package directory, produced by
	// runID ("" for none).
	RegisterModel(ctx context.Context, name, runID, source string) (ModelVersion, error)
	// GetModel returns a registered model with its versions and aliases.
	GetModel(ctx context.Context, name string) (RegisteredModel, error)
	// ListModels returns every registered model with versions and aliases,
	// by name.
	ListModels(ctx context.Context) ([]RegisteredModel, error)
	// GetModelVersion returns one version.
	GetModelVersion(ctx context.Context, name string, version int) (ModelVersion, error)
	// SetAlias points alias at version, moving it from any other version.
	SetAlias(ctx context.Context, name, alias string, version int) error
	// DeleteAlias removes an alias.
	DeleteAlias(ctx context.Context, name, alias string) error
	// ResolveAlias returns the version an alias points at.
	ResolveAlias(ctx context.Context, name, alias string) (ModelVersion, error)

	// URL returns the store's location (a file path or a postgres:// URL
	// with the password removed).
	URL() string
	// Close closes the store.
	Close() error
}
