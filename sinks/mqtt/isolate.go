package mqtt

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/pipeline"
)

// isolate publishes msgs one at a time, each awaited at QoS 1 (also when
// qos is 0: only an acknowledgement shows that the broker took a message),
// after a connection was lost during a Write. A broker drops the
// connection over a message it cannot accept (a non-UTF-8 topic, a packet
// too large): MQTT 5 says so with a DISCONNECT reason code
// (mqttclient.DisconnectError.Refuses), MQTT 3.1.1 just closes the socket.
// The message that was in flight when the connection ended is rejected at
// once when the broker said it refuses it, or when it breaks a second,
// fresh connection too; a broker that merely went away is not blamed for
// one loss. After each loss isolate reconnects itself and goes on with the
// message after the rejected one, so the good messages of the batch still
// get out within this Write. It returns the session it ended on.
func (s *Sink) isolate(ctx context.Context, sess *session, msgs []message, rej **pipeline.RejectedError) (*session, error) {
	struck := -1 // the message that broke a connection once already
	for i := 0; i < len(msgs); {
		m := &msgs[i]
		err := s.publishAlone(ctx, sess, m)
		switch {
		case err == nil:
			i++
			continue
		case ctx.Err() != nil:
			return sess, err
		case errors.Is(err, mqttclient.ErrRefused):
			// The connection is fine; a PUBACK refused the message. Only
			// a refusal of the message itself is final.
			cause, final := pubackCause(err)
			if !final {
				return sess, err
			}
			s.reject(rej, m, cause, err)
			i++
			continue
		}
		// The connection broke: wait for its end, to read the reason.
		select {
		case <-sess.conn.Done():
		case <-ctx.Done():
			return sess, ctx.Err()
		}
		cause := sess.conn.Cause()
		var de *mqttclient.DisconnectError
		if errors.As(cause, &de) && de.Refuses() || struck == i {
			if cause == nil {
				cause = err
			}
			s.reject(rej, m, disconnectCause(de), fmt.Errorf("broker dropped the connection after topic %q: %w", m.topic, cause))
			s.log.Warn("isolated a message the broker disconnects over", "topic", m.topic, "err", cause)
			i++
			struck = -1
		} else {
			struck = i
		}
		next, cerr := s.reconnect(ctx, sess)
		if cerr != nil {
			return sess, cerr
		}
		sess = next
	}
	return sess, nil
}

// publishAlone publishes one message at QoS 1 and waits for its PUBACK, or
// for the connection's end.
func (s *Sink) publishAlone(ctx context.Context, sess *session, m *message) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.ctx, cancel)
	defer stop()
	err := s.publishOne(ctx, sess, m, 1)
	if err != nil && sess.ctx.Err() != nil && !errors.Is(err, mqttclient.ErrRefused) {
		return fmt.Errorf("publish %s: connection lost: %w", m.topic, err)
	}
	return err
}

// reconnect replaces the broken session sess with a new connection.
func (s *Sink) reconnect(ctx context.Context, sess *session) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("mqtt %s: write: %w", s.addr, pipeline.ErrClosed)
	}
	if s.sess == sess {
		s.dropLocked()
	}
	if s.sess == nil {
		if err := s.connectLocked(ctx); err != nil {
			return nil, fmt.Errorf("mqtt %s: reconnect: %w: %w", s.addr, pipeline.ErrDisconnected, err)
		}
	}
	s.setState(pipeline.StateRunning, "")
	return s.sess, nil
}

// reject adds the samples of m to *rej.
func (s *Sink) reject(rej **pipeline.RejectedError, m *message, cause string, err error) {
	for _, i := range s.enc.origin[m.olo:m.ohi] {
		pipeline.Reject(rej, int(i), cause, err)
	}
}

// disconnectCause is the rejection cause of a message the broker dropped
// the connection over: oversize for DISCONNECT 0x95 packet too large (as
// for a PUBACK 0x95, see pubackCause), malformed otherwise (de may be nil:
// MQTT 3.1.1 just closes the socket).
func disconnectCause(de *mqttclient.DisconnectError) string {
	if de != nil && de.ReasonCode == 0x95 {
		return pipeline.CauseOversize
	}
	return pipeline.CauseMalformed
}

// pubackCause maps a PUBACK refusal to a rejection cause; final is false
// for refusals that may pass on a retry or after the operator fixed
// something for every message (not authorized, quota exceeded).
func pubackCause(err error) (cause string, final bool) {
	var pe *mqttclient.PubackError
	if !errors.As(err, &pe) {
		return "", false
	}
	switch pe.ReasonCode {
	case 0x90: // topic name invalid
		return pipeline.CauseInvalidName, true
	case 0x95: // packet too large
		return pipeline.CauseOversize, true
	case 0x99: // payload format invalid
		return pipeline.CauseMalformed, true
	}
	return "", false
}
