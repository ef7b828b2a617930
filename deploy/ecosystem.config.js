// PM2 entry for the baileys-janitor monitor (the spec's whatsapp-safe-monitor).
//   pm2 start /usr/share/doc/baileys-janitor/ecosystem.config.js && pm2 save
// The binary handles SIGINT (what PM2 sends) and exits 0 within 2 seconds.
//
// Logs: under PM2 (it sets pm_id) the monitor writes its normal output (ticks, notifications
// sent) to stdout, which PM2 keeps in ~/.pm2/logs/whatsapp-safe-monitor-out.log, and warnings
// and errors to stderr, …-error.log. Rotate both with pm2-logrotate (`pm2 install pm2-logrotate`).
module.exports = {
  apps: [
    {
      name: 'whatsapp-safe-monitor',
      // The package installs /usr/bin/baileys-janitor; `cargo install` puts it in ~/.cargo/bin.
      script: '/usr/bin/baileys-janitor',
      interpreter: 'none',
      args: ['--log-format', 'json', 'monitor', '--interval', '60s'],
      env: {
        BAILEYS_SESSIONS_PATH: '/opt/ai-admin/baileys_sessions',
        // NOTIFICATION_WEBHOOK: 'https://hooks.slack.com/services/…',
        // AUTO_CLEANUP: 'true',
        // BAILEYS_JANITOR_METRICS_FILE: '/var/lib/prometheus/node-exporter/baileys_janitor.prom',
      },
      autorestart: true,
      kill_timeout: 5000,
      max_memory_restart: '100M',
      restart_delay: 5000,
    },
  ],
};
