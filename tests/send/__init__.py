"""Tests of newsletter/send/."""
