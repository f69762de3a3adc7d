"""Reference handlers the benchmarks compare dagtrigger with: used only by bench/."""
