// The empty source the shared precompiled header (probnas_pch) is built with.
