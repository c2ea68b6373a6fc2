"""The training wing: datasets, augmentation, the Keras networks, fine-tuning, fitting the guard and the routing, export, Hub push."""
