"""Documents in, evidence out: loaders, chunking, embedding, versioned index, retrieval."""
