"""Tests of newsletter/preview/."""
