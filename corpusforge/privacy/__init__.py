"""Components of this area register here."""
