"""HTTP views, served by Faust's own web server (`WEB_PORT`, 6066 by default)."""
