package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/track"
)

func (a *app) modelsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "models",
		Short: "The model registry: named models, versions and aliases",
		Long: `The model registry (in the tracking store, see 'deepgo runs') names model packages:
each registered model has versions 1, 2, ... that point at a model package
directory and at the run that trained it, and aliases (production, staging, ...)
that each point at one version and move when set again.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.modelsLsCmd(), a.modelsRegisterCmd(), a.modelsAliasCmd(), a.modelsShowCmd())
	return c
}

// aliasList formats aliases as "production=2, staging=1".
func aliasList(m track.RegisteredModel) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.Aliases)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m.Aliases[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func (a *app) modelsLsCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "ls",
		Short: "List registered models",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(store, func(s track.Store) error {
				ms, err := s.ListModels(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if ms == nil {
						ms = []track.RegisteredModel{}
					}
					return a.writeJSON(ms)
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tVERSIONS\tLATEST\tALIASES")
				for _, m := range ms {
					latest := "-"
					if n := len(m.Versions); n > 0 {
						latest = strconv.Itoa(m.Versions[n-1].Version)
					}
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", m.Name, len(m.Versions), latest, aliasList(m))
				}
				return w.Flush()
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the models as JSON")
	return c
}

func (a *app) modelsRegisterCmd() *cobra.Command {
	var (
		store, runRef, path string
		asJSON              bool
	)
	c := &cobra.Command{
		Use:   "register NAME --run RUN [--path DIR]",
		Short: "Register a model package as the next version of NAME",
		Long: `Register a model package directory (with model.json) as the next version of the
registered model NAME, created if new. --run links the version to the run that
trained it; without --path the run's model_path tag (set by 'deepgo train') is used.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runRef == "" && path == "" {
				return usageError{fmt.Errorf("give --run RUN, --path DIR or both")}
			}
			return withStore(store, func(s track.Store) error {
				ctx := cmd.Context()
				runID := ""
				if runRef != "" {
					r, err := resolveRun(ctx, s, runRef)
					if err != nil {
						return err
					}
					runID = r.ID
					if path == "" {
						path = r.Tags["model_path"]
						if path == "" {
							return fmt.Errorf("run %s has no model_path tag: give --path DIR", r.ID)
						}
					}
				}
				abs, err := filepath.Abs(path)
				if err != nil {
					return err
				}
				if _, err := os.Stat(filepath.Join(abs, "model.json")); err != nil {
					return fmt.Errorf("--path %s is not a model package (no model.json): %w", path, err)
				}
				v, err := s.RegisterModel(ctx, args[0], runID, abs)
				if err != nil {
					return err
				}
				if asJSON {
					return a.writeJSON(v)
				}
				fmt.Fprintf(a.stdout, "registered %s version %d -> %s\n", v.Name, v.Version, v.Source)
				return nil
			})
		},
	}
	f := c.Flags()
	storeFlag(f, &store)
	f.StringVar(&runRef, "run", "", "the run that trained the model (ID, ID prefix or name)")
	f.StringVar(&path, "path", "", "the model package directory")
	f.BoolVar(&asJSON, "json", false, "print the new version as JSON")
	return c
}

func (a *app) modelsAliasCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
		del    bool
	)
	c := &cobra.Command{
		Use:   "alias NAME VERSION ALIAS",
		Short: "Point ALIAS (e.g. production) at VERSION of NAME, moving it from any other version",
		Args:  usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, alias := args[0], args[2]
			version, err := strconv.Atoi(args[1])
			if err != nil || version < 1 {
				return usageError{fmt.Errorf("VERSION %q: want a version number (1, 2, ...)", args[1])}
			}
			return withStore(store, func(s track.Store) error {
				ctx := cmd.Context()
				if del {
					cur, err := s.ResolveAlias(ctx, name, alias)
					if err != nil {
						return err
					}
					if cur.Version != version {
						return fmt.Errorf("%s@%s points at version %d, not %d", name, alias, cur.Version, version)
					}
					if err := s.DeleteAlias(ctx, name, alias); err != nil {
						return err
					}
					if asJSON {
						return a.writeJSON(map[string]any{"name": name, "alias": alias, "deleted": true})
					}
					fmt.Fprintf(a.stdout, "removed %s@%s\n", name, alias)
					return nil
				}
				if err := s.SetAlias(ctx, name, alias, version); err != nil {
					return err
				}
				v, err := s.ResolveAlias(ctx, name, alias)
				if err != nil {
					return err
				}
				if asJSON {
					return a.writeJSON(v)
				}
				fmt.Fprintf(a.stdout, "%s@%s -> version %d (%s)\n", name, alias, v.Version, v.Source)
				return nil
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the version the alias now points at as JSON")
	c.Flags().BoolVar(&del, "delete", false, "remove the alias instead (it must point at VERSION)")
	return c
}

func (a *app) modelsShowCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a registered model's versions and aliases",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(store, func(s track.Store) error {
				m, err := s.GetModel(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return a.writeJSON(m)
				}
				fmt.Fprintf(a.stdout, "model %s (aliases: %s)\n", m.Name, aliasList(m))
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VERSION\tALIASES\tRUN\tCREATED\tSOURCE")
				for _, v := range m.Versions {
					al, run := strings.Join(v.Aliases, ","), v.RunID
					if al == "" {
						al = "-"
					}
					if run == "" {
						run = "-"
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", v.Version, al, run, v.CreatedAt.Local().Format(time.DateTime), v.Source)
				}
				return w.Flush()
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the model as JSON")
	return c
}
