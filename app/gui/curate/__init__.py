"""The curation screen: queries over episodes, their statistics, versions and exports."""
