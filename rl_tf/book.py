"""The book's listings 5.2.1 and 5.2.2, runnable as printed (adapted only to Gymnasium 1.x).

Kept for the notebooks, which show their defects beside the corrected trainers:

* it updates after *every step* with the *immediate* reward, not the return that follows
  (book 4.2.3 asks for Q^pi(s_t, a_t)); on CartPole every reward is 1, so each update merely
  makes the action just taken more likely, whatever it led to;
* it takes ``log(softmax(logits))`` (underflows to -inf for unlikely actions) rather than
  ``log_softmax``;
* ``batch_size`` is accepted and never used.

Adaptations, and only these: ``env.reset()`` returns ``(obs, info)`` and ``env.step`` returns
five values in Gymnasium 1.x (``done = terminated or truncated``); the state gets a batch
dimension (``state[None]``) because ``tf.random.categorical`` needs 2-D logits; the action is
converted to a Python int for ``env.step``; and each episode's return is recorded so the bench can
compare. For lack of a step limit the listing runs ``epochs`` episodes.
"""

from __future__ import annotations

import tensorflow as tf


def train_policy(policy_net, env, optimizer, epochs, batch_size):
    """Listing 5.2.1's ``train_policy``; returns each episode's return (added for the bench)."""
    returns = []
    for epoch in range(epochs):
        state, _ = env.reset()
        done = False
        total = 0.0
        while not done:
            with tf.GradientTape() as tape:
                logits = policy_net(state[None])
                action = tf.random.categorical(logits, 1)[0, 0]
                next_state, reward, terminated, truncated, _ = env.step(int(action))
                done = terminated or truncated
                loss = -tf.math.log(tf.nn.softmax(logits)[0, action]) * reward
            grads = tape.gradient(loss, policy_net.trainable_variables)
            optimizer.apply_gradients(zip(grads, policy_net.trainable_variables))
            state = next_state
            total += reward
        returns.append(total)
    return returns


def train_policy_with_feedback(policy_net, env, optimizer, epochs, batch_size, feedback_fn):
    """Listing 5.2.2: the same loop with ``reward + feedback_fn(state, action, next_state)``."""
    returns = []
    for epoch in range(epochs):
        state, _ = env.reset()
        done = False
        total = 0.0
        while not done:
            with tf.GradientTape() as tape:
                logits = policy_net(state[None])
                action = tf.random.categorical(logits, 1)[0, 0]
                next_state, reward, terminated, truncated, _ = env.step(int(action))
                done = terminated or truncated
                feedback = feedback_fn(state, action, next_state)
                loss = -tf.math.log(tf.nn.softmax(logits)[0, action]) * (reward + feedback)
            grads = tape.gradient(loss, policy_net.trainable_variables)
            optimizer.apply_gradients(zip(grads, policy_net.trainable_variables))
            state = next_state
            total += reward
        returns.append(total)
    return returns
