"""Text out of every format users have: HTML, PDF, Office, markup, code, WARC; media recognised."""
