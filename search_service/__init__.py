"""Plinqy Search: semantic + geo 'search near me' over the Plinqy marketplace."""
