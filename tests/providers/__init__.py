"""Tests of newsletter/providers/."""
