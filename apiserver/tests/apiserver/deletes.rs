//! Deletes on the test API server: propagation policies, the garbage collector, deletecollection,
//! the namespace controller, and server-side apply conflicts as HTTP answers.
