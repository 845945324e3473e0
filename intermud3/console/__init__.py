"""The web console's static files (HTML, CSS, JavaScript modules), served by
intermud3.api.static; no build step."""
