//! Building the Mesos TaskInfo of an instance.
