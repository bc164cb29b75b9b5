"""treeoflife-etl: the catalog, stages and workers that build a TreeOfLife WebDataset."""
