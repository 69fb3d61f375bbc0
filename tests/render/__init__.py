"""Tests of newsletter/render/."""
