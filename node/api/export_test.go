package api

import "time"

// WithKeepAlive sets the event stream keep-alive interval (tests).
func WithKeepAlive(d time.Duration) Option { return func(c *config) { c.keepAlive = d } }

// WithTimeouts sets the connection read and write timeouts (tests).
func WithTimeouts(read, write time.Duration) Option {
	return func(c *config) { c.readTimeout, c.writeTimeout = read, write }
}
