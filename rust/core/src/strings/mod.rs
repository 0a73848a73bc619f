//! Text-to-pattern Hamming distances (Chan, Jin, Vassilevska Williams, Xu), k-mismatch,
//! approximate distances and sumsets.
