"""Imported once by the local executor's forkserver: load the plugins (entry points included)
there, so that every worker forked from it starts with them already imported."""

from dmca_core import plugins

plugins.setup()
