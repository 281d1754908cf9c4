package train

// SetBeforeInstall sets the hook run before a checkpoint directory is
// renamed into place (nil removes it).
func SetBeforeInstall(f func(tmp string) error) { beforeInstall = f }
