"""carenet outcomes: indicators from agreed sources, insurer reports, financing and SROI."""
