//go:build !unix

package replay

// descriptorBudget: no descriptor limit to read here, so a generous bound.
func descriptorBudget() int { return 1 << 16 }

func nofileText() string { return "the descriptor limit" }
