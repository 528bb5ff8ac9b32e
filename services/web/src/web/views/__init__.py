"""The pages, one blueprint per part of the front."""
