"""The EgoPack backpack: task prototypes, their storage and the cross-task interaction."""
