"""Benchmark scripts (speed, memory): they print numbers and assert nothing."""
