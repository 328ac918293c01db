//! HR export files: CSV as Excel and HR systems really write it.
