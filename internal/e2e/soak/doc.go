// Package soak runs Parley for minutes under churn (make soak, not make
// test: its test has the build tag soak): posts flow into a few rooms while
// subscribers connect to either replica, read a while and drop, then resume
// where they left off. At the end every subscriber's sequence must be
// complete, and each replica's goroutines and memory must be back near
// where they started. It prints one summary line.
package soak
