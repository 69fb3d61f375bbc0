"""Tests of newsletter/subscribers/."""
