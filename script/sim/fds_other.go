//go:build !unix

package sim

// DescriptorWarning is "" where descriptors are not counted against a limit.
func DescriptorWarning(devices int, builtinSink bool) string { return "" }
