// PM2 entry for the baileys-janitor monitor (the spec's whatsapp-safe-monitor).
//   pm2 start scripts/ecosystem.config.js && pm2 save
// The binary handles SIGINT (what PM2 sends) and exits 0 within 2 seconds.
module.exports = {
  apps: [
    {
      name: 'whatsapp-safe-monitor',
      script: '/usr/local/bin/baileys-janitor',
      interpreter: 'none',
      args: ['--log-format', 'json', 'monitor', '--interval', '60s'],
      env: {
        BAILEYS_SESSIONS_PATH: '/opt/ai-admin/baileys_sessions',
        // NOTIFICATION_WEBHOOK: 'https://hooks.slack.com/services/…',
        // AUTO_CLEANUP: 'true',
        // BAILEYS_JANITOR_METRICS_FILE: '/var/lib/node_exporter/textfile/baileys_janitor.prom',
      },
      autorestart: true,
      kill_timeout: 5000,
      max_memory_restart: '100M',
      restart_delay: 5000,
      merge_logs: true,
    },
  ],
};
