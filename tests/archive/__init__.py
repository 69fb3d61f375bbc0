"""Tests of newsletter/archive/."""
